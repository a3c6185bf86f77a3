/* math.h - llvm-libc's correctly rounded float math used by the kernel. */
#ifndef FLUID_LIBC_MATH_H
#define FLUID_LIBC_MATH_H
float expf(float x);
float logf(float x);
float powf(float x, float y);
float sinf(float x);
float cosf(float x);
float sqrtf(float x);
float tanhf(float x);
float fabsf(float x);
double sqrt(double x);
double exp(double x);
double log(double x);
double pow(double x, double y);
#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))
#define isnan(x) __builtin_isnan(x)
#define isinf(x) __builtin_isinf(x)
#define isfinite(x) __builtin_isfinite(x)
#endif

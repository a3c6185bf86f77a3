/* ctype.h - llvm-libc's character classes (C locale). */
#ifndef FLUID_LIBC_CTYPE_H
#define FLUID_LIBC_CTYPE_H
int isdigit(int c);
int isspace(int c);
int isalpha(int c);
int isalnum(int c);
int isprint(int c);
int isxdigit(int c);
int tolower(int c);
int toupper(int c);
#endif

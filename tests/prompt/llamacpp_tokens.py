"""llama.cpp's tokenizer and a model's own chat template as the oracle of
the prompt tests (tools/peer/tokenize.mjs: node-llama-cpp loads the GGUF
vocabulary-only, @huggingface/jinja renders tokenizer.chat_template).

    def test_x(tok_oracle): tok_oracle(model, texts=[...]) or tok_oracle(model, chats=[[messages], ...])
    -> [{"text": ..., "tokens": [...]}, ...]

Skips (fails under CI=true) when node-llama-cpp is missing, as the logits
oracle does (test_llamacpp_oracle.py)."""
import json
import subprocess

import pytest

from conftest import ROOT
from test_llamacpp_oracle import in_ci, peer_problem

SCRIPT = ROOT / "tools" / "peer" / "tokenize.mjs"


@pytest.fixture(scope="session")
def tok_oracle():
    why = peer_problem()
    if why:
        if in_ci():
            pytest.fail(f"llama.cpp oracle unavailable in CI: {why}")
        pytest.skip(f"llama.cpp oracle unavailable: {why}")

    def run(model, texts=None, chats=None):
        arg = ["--texts", json.dumps(texts)] if texts is not None else ["--chat", json.dumps(chats)]
        r = subprocess.run(["node", str(SCRIPT), "--model", str(model), *arg], capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            pytest.fail(f"tokenize.mjs on {model.name}: {r.stdout.strip()[-1000:]} {r.stderr.strip()[-1000:]}")
        return json.loads(r.stdout)

    return run


def shell_line(text):
    """Text as one `fluid>` line: the shell decodes \\\\, \\n, \\t, \\xHH."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def ids_after(out, label):
    """The id list printed after `label` ("(prompt tokens: [...])", "[...]")."""
    i = out.index(label) + len(label)
    return json.loads(out[i:out.index("]", i) + 1])

"""Quantizing a checkpoint tensor by tensor: the same file as the in-memory path, sharded
folders and their indexes, bad checkpoints, no half files, and memory near one tensor."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from numfmt.cli import main
from numfmt.errors import NumfmtError
from numfmt.models.checkpoint import quantize_checkpoint
from numfmt.models.saving import load_quantized, save_model
from numfmt.nn import quantize_model


@pytest.fixture
def sharded(tmp_path, tiny_llama):
    path = tmp_path / "ck"
    tiny_llama.save_pretrained(path, max_shard_size="50KB")
    assert (path / "model.safetensors.index.json").exists()
    return path


@pytest.mark.parametrize("recipe", ["int4/group:32", "int8/channel"])
def test_streaming_writes_what_the_in_memory_path_writes(
    tmp_path, tiny_llama, sharded, ids, recipe
):
    report = quantize_checkpoint(sharded, tmp_path / "s.safetensors", recipe, progress=False)
    assert len(report.layers) == 14 and report.bytes_after < report.bytes_before
    q, _ = quantize_model(tiny_llama, recipe, progress=False)
    save_model(q, tmp_path / "m.safetensors")
    a, b = load_quantized(tmp_path / "s.safetensors"), load_quantized(tmp_path / "m.safetensors")
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    with torch.no_grad():
        assert torch.equal(a(ids).logits, b(ids).logits)


def test_bad_checkpoints_get_one_message(tmp_path, sharded):
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[1]
    (sharded / shard).rename(tmp_path / "away.safetensors")
    with pytest.raises(NumfmtError, match=f"names the shard {shard}, which is missing"):
        quantize_checkpoint(sharded, tmp_path / "a.safetensors", progress=False)
    (tmp_path / "away.safetensors").rename(sharded / shard)
    index["weight_map"]["model.layers.9.mlp.up_proj.weight"] = shard
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(NumfmtError, match="which does not hold it"):
        quantize_checkpoint(sharded, tmp_path / "a.safetensors", progress=False)
    data = (sharded / shard).read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(NumfmtError, match="truncated"):
        quantize_checkpoint(cut, tmp_path / "b.safetensors", progress=False)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(NumfmtError, match="not a readable safetensors file"):
        quantize_checkpoint(junk, tmp_path / "c.safetensors", progress=False)
    with pytest.raises(NumfmtError, match="never writes over its input"):
        quantize_checkpoint(sharded / shard, sharded / shard, progress=False, overwrite=True)
    assert not (tmp_path / "a.safetensors").exists() and not (tmp_path / "b.safetensors").exists()


def test_a_failure_midway_leaves_no_file(tmp_path, sharded, monkeypatch):
    from numfmt.models import checkpoint as streaming

    calls = []

    def failing(self, name):
        calls.append(name)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return original(self, name)

    original = streaming.SafetensorsFile.read
    monkeypatch.setattr(streaming.SafetensorsFile, "read", failing)
    with pytest.raises(NumfmtError, match="No space left on device"):
        quantize_checkpoint(sharded, tmp_path / "out.safetensors", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no output, no temporaries


def test_the_command_streams_a_checkpoint(tmp_path, sharded):
    out = tmp_path / "q.safetensors"
    r = CliRunner().invoke(
        main,
        [
            "model",
            "quantize",
            str(sharded),
            "--stream",
            "--recipe",
            "int4/group:32",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["recipe"] == "int4/group:32" and out.exists()
    bad = CliRunner().invoke(main, ["model", "quantize", str(sharded), "--stream"])
    assert bad.exit_code == 2 and "give --out FILE.safetensors" in bad.stderr
    other = tmp_path / "other.safetensors"
    args = ["model", "quantize", str(sharded), "--stream", "-a", "output-mse", "-o", str(other)]
    bad = CliRunner().invoke(main, args)
    assert bad.exit_code == 2 and "output-mse needs the model in memory" in bad.stderr


PEAK = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from safetensors.numpy import load_file
    from numfmt.models.checkpoint import quantize_checkpoint
    folder = sys.argv[1]
    # the same work on a small checkpoint first: imports, torch's pools, every kernel
    # compiled (numba's compiler holds tens of MB while it works; not what is measured)
    quantize_checkpoint(folder + "/../warm", folder + "/../warm.safetensors", "int4/group:64", progress=False)
    import threading, time
    def resident():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))
    def measured(work):
        before, peak, done = resident(), [0], threading.Event()
        def watch():  # the resident set, sampled while the work runs
            while not done.is_set():
                peak[0] = max(peak[0], resident())
                time.sleep(0.002)
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            kept = work()
            peak[0] = max(peak[0], resident())
        finally:
            done.set()
            watcher.join()
        return peak[0] - before
    streamed = measured(lambda: quantize_checkpoint(folder, folder + "/../out.safetensors", "int4/group:64", progress=False, overwrite=True))
    # what holding the whole checkpoint costs, measured the same way
    loaded = measured(lambda: [a.copy() for s in range(4) for a in load_file(f"{folder}/part-{s}.safetensors").values()])
    print(streamed, loaded)
    """
)


@pytest.mark.slow
def test_streaming_memory_stays_near_one_tensor(tmp_path):
    from safetensors.numpy import save_file

    folder, warm = tmp_path / "ck", tmp_path / "warm"
    folder.mkdir()
    warm.mkdir()
    rng = np.random.default_rng(0)
    save_file(
        {f"w{i}.weight": rng.standard_normal((256, 512), dtype=np.float32) for i in range(2)},
        str(warm / "part.safetensors"),
    )
    for shard in range(4):  # 4 shards of 48 tensors of 0.5 MB: 96 MB
        names = (f"model.layers.{shard * 48 + i}.proj.weight" for i in range(48))
        tensors = {n: rng.standard_normal((256, 512), dtype=np.float32) for n in names}
        save_file(tensors, str(folder / f"part-{shard}.safetensors"))
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(folder)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    streamed, loaded = (int(v) for v in done.stdout.split())
    checkpoint = 192 * 2**19
    assert (tmp_path / "out.safetensors").exists()
    assert streamed < checkpoint / 3  # a working set of some tensors, not the checkpoint
    assert loaded > 0.9 * checkpoint  # the same measure sees a whole checkpoint held


def test_an_encoder_checkpoint_streams_with_its_own_names(tmp_path):
    from transformers import BertConfig, BertModel

    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    model = BertModel(config).eval()
    model.save_pretrained(tmp_path / "bert")
    report = quantize_checkpoint(
        tmp_path / "bert", tmp_path / "b.safetensors", "int8/channel", progress=False
    )
    # its file names the layers without a head's prefix (encoder.layer.0...): all six found
    assert len(report.layers) == 7 and all(not r.name.startswith("bert.") for r in report.layers)
    q, _ = quantize_model(model, "int8/channel", progress=False)
    ids = torch.randint(0, 64, (1, 12))
    with torch.no_grad():
        ours = load_quantized(tmp_path / "b.safetensors")(ids).last_hidden_state
        assert torch.equal(ours, q(ids).last_hidden_state)


def test_an_fp8_checkpoint_is_refused_before_anything_is_written(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    weights = {
        "layer.weight": torch.randn(64, 64).to(torch.float8_e4m3fn),
        "layer.weight_scale_inv": torch.ones(1),
    }
    st.save_file(weights, str(tmp_path / "fp8.safetensors"))
    with pytest.raises(NumfmtError, match=r"layer.weight is stored as F8_E4M3; numfmt quantizes"):
        quantize_checkpoint(tmp_path / "fp8.safetensors", tmp_path / "q.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp8.safetensors"]


def test_a_bfloat16_checkpoint_counts_its_parameters(tmp_path, tiny_llama):
    import copy

    folder = tmp_path / "bf16"
    copy.deepcopy(tiny_llama).to(torch.bfloat16).save_pretrained(folder)  # (a shared fixture)
    report = quantize_checkpoint(folder, tmp_path / "q.safetensors", "int8/channel")
    expected = sum(p.numel() for n, p in tiny_llama.state_dict().items() if n != "lm_head.weight")
    assert report.parameters == expected

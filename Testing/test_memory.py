"""keep_freed_memory: CPU work that allocates and frees buffers of MBs stops page-faulting."""

import subprocess
import sys

import pytest

# convolutions and elementwise ops on a 48^3 volume, the kind of buffers a forward frees and
# allocates again; prints the page faults of the last two of three rounds
_WORK = """
import resource, sys, torch
torch.set_num_threads(1)
if sys.argv[1] == "on":
    from medsegmamba.memory import keep_freed_memory
    assert keep_freed_memory()
x, w = torch.randn(1, 4, 48, 48, 48), torch.randn(8, 4, 3, 3, 3)
def work():
    for _ in range(3):
        (torch.nn.functional.conv3d(x, w, padding=1) * 2).exp_().sum(1)
work()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
work(); work()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_buffers_are_reused_without_page_faults():
    from medsegmamba.memory import keep_freed_memory

    if not keep_freed_memory():
        pytest.skip("this Linux has no glibc mallopt (musl?)")
    faults = {arm: int(subprocess.run([sys.executable, "-c", _WORK, arm], capture_output=True, text=True,
                                      check=True).stdout) for arm in ("off", "on")}
    print("page faults:", faults)  # 71,718 and 11,664 on the 2-core CI machine
    assert faults["on"] * 3 < faults["off"]


def test_cli_turns_it_on(monkeypatch, tmp_path):
    import medsegmamba.cli as cli

    called = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: called.append(1) or True)
    assert cli.main(["segment", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "out")]) != 0
    assert called == [1]

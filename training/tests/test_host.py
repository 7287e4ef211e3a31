"""keep_freed_memory: large freed blocks are reused instead of being faulted in afresh."""
import platform
import subprocess
import sys

import pytest

# Like an update's activations: tensors of 64, 48 and 32 MiB made and freed in an interleaved
# order, 20 times; prints the minor page faults of the last 10 rounds (the first ones fill the heap).
FAULTS = """
import resource, sys, torch
from training.host import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
for round in range(20):
    if round == 10:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(2**24)
    y = torch.ones(3 * 2**22)
    del x
    z = torch.ones(2**23)
    del y, z
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def minor_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is for glibc's malloc")
def test_freed_tensors_are_reused_without_page_faults():
    default, kept = minor_faults("default"), minor_faults("keep")
    # 144 MiB a round is 36864 pages of 4 KiB: by default glibc maps and faults them in every round.
    assert default > 10 * 36864 * 0.9
    assert kept < default / 100

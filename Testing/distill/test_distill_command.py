import subprocess
import sys


def test_command_module_does_not_import_torch_and_parses():
    code = ("import argparse, sys\n"
            "from medsegmamba.distill import command\n"
            "p = argparse.ArgumentParser(); command.add_arguments(p)\n"
            "a = p.parse_args(['--teacher', 't.safetensors', '-o', 's.safetensors', "
            "'--label-maps', 'maps', '--w-ca', '0', '--self-distill'])\n"
            "assert a.w_ca == 0.0 and a.self_distill and a.student == 'student-t1'\n"
            "assert 'torch' not in sys.modules, 'torch imported at import time'\n")
    subprocess.run([sys.executable, "-c", code], check=True)

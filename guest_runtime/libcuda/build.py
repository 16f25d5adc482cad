"""Compile the OrionX libcuda.so.1 with the system C compiler.

setup.py runs this when the package is installed (also editable), the
Makefile's ``libcuda`` target too, and the tests call :func:`build` to make
a sanitizer build in a temporary directory:

    python guest_runtime/libcuda/build.py [--out DIR] [--sanitize]

C11, warnings are errors, no C++ runtime, symbols hidden but the exported
ones (generated/libcuda.map). The output is DIR/libcuda.so.1 and a
DIR/libcuda.so link to it; DIR defaults to guest_runtime/lib.
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "lib"
SONAME = "libcuda.so.1"

CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-DORIONX_LIBCUDA_BUILD", "-fPIC",
          "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror", "-O2", "-g",
          "-I", str(HERE / "include"), "-I", str(HERE / "src"), "-I", str(HERE / "generated")]
SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]


def sources():
    return sorted(str(p) for p in list((HERE / "src").glob("*.c"))
                  + list((HERE / "generated").glob("*.c")))


def compiler():
    """The C compiler: $CC, else cc; an error naming the Debian package when absent."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise RuntimeError("no C compiler (%s) to build libcuda.so.1: install it "
                           "(Debian: apt-get install gcc libc6-dev)" % cc)
    return cc


def build(out_dir=DEFAULT_OUT, sanitize=False):
    """Compile into OUT_DIR; returns the path of libcuda.so.1."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    library = out_dir / SONAME
    command = [compiler()] + CFLAGS + (SANITIZE if sanitize else []) + [
        "-shared", "-Wl,-soname," + SONAME, "-Wl,--no-undefined",
        "-Wl,--version-script=" + str(HERE / "generated" / "libcuda.map"),
        "-o", str(library) + ".tmp"] + sources() + [
        str(HERE / "generated" / "ox_aliases.ld"), "-lpthread"]
    subprocess.run(command, check=True)
    os.replace(str(library) + ".tmp", library)
    link = out_dir / "libcuda.so"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(SONAME)
    return library


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--sanitize", action="store_true",
                        help="with AddressSanitizer and UndefinedBehaviorSanitizer")
    args = parser.parse_args(argv)
    try:
        print(build(args.out, args.sanitize))
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        sys.exit("libcuda build failed: %s" % exc)


if __name__ == "__main__":
    main()

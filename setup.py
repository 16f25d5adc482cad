# Packaging is declared in setup.cfg; this file only lets older tools
# (and `pip install -e .` on old pips) find it.
import setuptools

setuptools.setup()

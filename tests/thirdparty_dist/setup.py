"""A tiny third-party distribution that adds a `peak` shortcut through an entry point."""
from setuptools import setup

setup(
    name='peak-lite-hello3p',
    version='1.0',
    py_modules=['peak_lite_hello3p'],
    entry_points={'peak_lite.commands': ['hello3p = peak_lite_hello3p:Hello']},
)

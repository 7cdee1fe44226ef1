"""Built-in systems, one folder each (model.py + system.toml); shipped as `avse_bench.builtin_systems`.

Folders here are discovered by `avse_bench.systems`; they are loaded from their files, never imported as
packages by each other.
"""

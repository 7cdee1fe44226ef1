"""avse_bench.profiling"""

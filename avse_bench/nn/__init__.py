"""avse_bench.nn"""

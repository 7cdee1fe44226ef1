"""avse_bench.data"""

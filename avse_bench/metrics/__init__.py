"""avse_bench.metrics"""

"""avse_bench.report"""

"""Collector: OTLP receivers (gRPC and HTTP) that decode requests into span batches."""

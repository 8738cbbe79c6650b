"""Query: trace assembly, adjusters, analysis and the HTTP/gRPC APIs."""

"""Generated Python code of the .proto files Spanlake owns."""

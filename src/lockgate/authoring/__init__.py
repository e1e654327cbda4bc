"""Front-ends that build `lockgate.model` pipelines: the Python API and file discovery."""

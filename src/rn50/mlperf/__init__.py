"""MLPerf Inference ResNet-50 through the official LoadGen (`rn50[mlperf]`).

`rules` holds the scenarios as data, `logs` reads LoadGen's files back, `qsl`
holds the preprocessed images, `sut` batches LoadGen's queries onto engine
workers, `run` ties them together (`rn50 mlperf`). Importing this package
does not import LoadGen; running does.
"""

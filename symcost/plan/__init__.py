"""Planning a training run on a cluster: model (a spec) x execution x system (hardware data)."""

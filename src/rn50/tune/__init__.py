"""rn50 tune: a staged, pruned search of real bench runs for the best way to run ResNet-50 here."""

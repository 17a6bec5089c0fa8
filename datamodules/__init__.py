"""LightningDataModules, shard schema, converters and the synthetic benchmark."""

def test_tiny_model_fixture(tiny_model):
    assert tiny_model.manifest.statistics["steps"] == 2
    assert tiny_model.has_checkpoint

"""MachineLabs Desktop: train fast neural style transfer models and apply them to photos."""

__version__ = "0.1.0"

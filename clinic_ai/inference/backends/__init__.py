"""TensorFlow/Keras lives here and nowhere else: the web process must never import this package."""

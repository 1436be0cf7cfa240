"""mmJSD reproduction pipeline: data, models, training, evaluation and reporting.

Layers, bottom first (each imports only from those before it): errors < core < lab < artifacts < data < networks < models < training < evaluation < reporting < config < pipeline < cli/__main__.
Every package's __init__.py says what it holds.
"""

__version__ = "0.1.0"

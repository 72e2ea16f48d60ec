"""Pure statistics: numpy and SciPy only, no Django."""

"""tradewire: trading signals in, broker orders out, positions looked after."""

__version__ = "0.1.0"

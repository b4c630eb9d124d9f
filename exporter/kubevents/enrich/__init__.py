"""The pure core: classification, correlation and pattern stages.

Nothing in this package touches the network or reads the wall clock.
"""

"""planner: will this model fit, and how fast will it be?"""

__version__ = "0.1.0"

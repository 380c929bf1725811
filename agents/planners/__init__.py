"""MAPF baselines that act in srmt's evaluation: pogema's A* agent (wrapped), centralised PIBT,
FollowerLite (learn-to-follow's planner + released network) and a random agent.

Each implements :class:`agents.planners.base.Algorithm`: ``reset(state, seed)`` then ``act(state)``
with a :class:`~agents.planners.base.WorldState`. Heavy imports (torch for FollowerLite) stay in
their modules.
"""

from agents.planners.base import MOVES, Algorithm, WorldState

__all__ = ["MOVES", "Algorithm", "WorldState"]

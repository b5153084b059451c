"""Incidents and requests (诉求/事件): intake, dispatch, the closed loop, supervision, statistics."""

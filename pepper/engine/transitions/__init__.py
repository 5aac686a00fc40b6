"""The state machine's transitions, one module per concern, one function per transition.

``EngineState`` (``engine.state``) holds the state and routes each event to its
``on_*`` function here; every function takes the state and the ``Turn`` of the
event being handled, changes the state, and appends actions to the turn.

- ``turn``: the turn of one event (its time, its cause, the actions so far) and ``move``
- ``placement``: offering a ready task, queueing it, starting it, filling free agents
- ``admission``: taking tasks in, counting open dependencies, releasing dependents
- ``outcomes``: an attempt ended, a claim refused, progress, workers lost
- ``recovery``: what a failure leads to (the task's policy decides), and errors handled by hand
- ``cancellation``: cancelling a task and, transitively, what depends on it
- ``adoption``: rows other processes wrote, and writes the store refused
- ``agents``: agents joining and leaving, peers, ratings, health, placements, the pool
- ``timers``: retries falling due, agents looking again, leases expiring
"""

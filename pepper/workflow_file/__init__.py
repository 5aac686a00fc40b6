"""Workflow files: a workflow, its default inputs and the agents it needs, in one YAML file.

::

    name: docsite                        # required
    description: Build the docs site     # optional
    agents: agents.yaml                  # optional, see below
    inputs: {site: docs}                 # optional: default inputs of every run
    fail_fast: false                     # optional: the first failure cancels every unfinished step
    steps:                               # required: a list of steps, each with an `id` ...
      - id: draft
        type: documentation              # the task type (required)
      - id: outline
        type: documentation
        agent: writer                    # pin the step to one agent
        needs: [draft]                   # or `needs: draft`: the steps that must complete first
        inputs: {page: "${{ inputs.site }}/index.md", text: "${{ steps.draft.result.text }}"}
        priority: high                   # critical, high, normal, medium, low, or an integer
        timeout: 30s                     # seconds, or 500ms / 30s / 15m / 1h
        retries: 2                       # retries after a failure
        skills: [markdown]               # what the agent must have ...
        resources: {cpu: 1, memory: 512Mi}    # ... and reserve while it runs
        when: steps.draft.result.ok      # run only if true; a bare expression or "${{ ... }}"
        recovery: retry(2) -> dead_letter   # what a failure leads to (instead of retries)
        metadata: {owner: docs}

A step key may also be written as any alias of the task-spec schema (``pepper.model.task_spec``):
``dependencies`` or ``depends_on`` for ``needs``, ``task_type`` for ``type``, ``max_retries`` for ``retries``, ...
``steps`` may also be a mapping of step id to step (``steps: {draft: {type: documentation}}``).
``requirements: {performance_score: 0.8, availability: true}`` adds the rarer requirements.
A step's ``when`` and ``${{ ... }}`` references may read ``inputs`` and the results of the steps in
its ``needs`` (see ``pepper.model.expressions``); references are resolved when a run starts.

``agents`` is a path to an agent file or folder (relative to this file), an agent mapping written
in place (the fields of an agent file: ``agent_id``, ``task_types``, ``function``/``command``/``class``,
...), or a list mixing both. Agents written in place behave as if they were in an agent file beside
this one: ``function: helpers:fn`` finds ``helpers.py`` here, and commands get ``$PEPPER_AGENT_DIR``.

Every error names the file and line. The whole file is checked before anything is registered.

``parser`` reads the file, its top level and its agents; ``checks`` checks each step where it is written.

Implementation, not public API: use ``pepper`` and ``pepper.core``; names here may change without notice.
"""

from pepper.workflow_file.parser import WorkflowFile, parse_workflow_file, parse_workflow_text

__all__ = ["WorkflowFile", "parse_workflow_file", "parse_workflow_text"]

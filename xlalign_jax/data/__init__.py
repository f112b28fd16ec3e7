"""Pure-Python readers of the project's data files in their real formats (Seahorse, OpenAssistant).

They know nothing of seqio; `xlalign_tasks` turns their records into tasks.
"""

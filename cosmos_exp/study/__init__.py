"""Studies: experiments made of several cosmos-exp runs, each a child process with its own run directory inside
the study's, and one report over them (rig_change.py: the rig-change study of the trajectory model)."""

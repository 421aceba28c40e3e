"""An independent implementation of the Fleet Owner API's remote part, for the sandbox and tests.

It never imports the planner or its constants: it is written from the API
reference alone, so that it can catch the planner's mistakes.
"""

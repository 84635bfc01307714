"""The local web app (``facedub ui``): a Gradio page over the same stage functions as the CLI.

``server`` launches it (127.0.0.1, offline, uploads limited), ``app`` builds the page,
``jobs`` runs long work in the background with its state in the project folder, ``tasks``
turns form values into stage configs and calls the stage functions.
"""

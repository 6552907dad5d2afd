"""MioDesk as a local speech server: the OpenAI and VOICEVOX speech APIs over the app's own engine.

`service` is the engine-side half (one engine, a bounded queue, the window's reading first); the HTTP
layer sits on top of it.
"""

"""Thin triggers: parse the input, call one service, format the answer."""

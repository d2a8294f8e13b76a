"""Test-only stand-in for slicer.i18n (the application's translation helpers)."""


def tr(text):
    return text


def translate(context, text):
    return text

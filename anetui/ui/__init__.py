"""The Textual dashboard: a thin layer over :mod:`anetui.session`. Only this package
imports textual."""

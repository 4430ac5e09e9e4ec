"""The search room: hyperparameter studies on Optuna (``nncli tune``). The only room that
imports optuna (the ``tune`` extra); ``study.py`` opens a study in its storage (SQLite by
default, any SQLAlchemy URL), checks it searches the spec's space, and runs trials."""

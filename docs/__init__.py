"""The documentation site (Sphinx, built by ``make docs``) and the code that generates and
checks parts of it: :mod:`docs.settings_reference` writes the settings reference from
``webcall_widget.conf.SCHEMA``; :mod:`docs.examples` holds the complete code samples the
pages include and the tests import or run."""

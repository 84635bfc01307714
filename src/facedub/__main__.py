from facedub.cli import entry

entry()

import sys

from str_lightning.app.cli import main

sys.exit(main())

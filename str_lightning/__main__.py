import sys

from str_lightning.cli import main

sys.exit(main())

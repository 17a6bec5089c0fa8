"""What a model's predictions become: per-sequence prediction files and their export formats
(OBJ, PLY, AMASS, BVH)."""

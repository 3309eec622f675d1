"""What training samples come from: one config over synthetic drives, KITTI raw, image folders
and recorded bags, and the triplets, augmentation and caches built from them."""

"""Networks: the feed-forward style network and the VGG19 loss network."""

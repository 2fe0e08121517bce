greeting: hello from pillar

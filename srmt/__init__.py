"""srmt models: encoder -> memory core (shared recurrent memory and variants) -> heads. torch only."""

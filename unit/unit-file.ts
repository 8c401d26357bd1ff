// Placeholder: the parser is being written; the types below are the contract.
/** One `Name=Value` assignment of a unit file, in file order; repeated keys are kept. */
export interface UnitOption {
  readonly section: string;
  readonly name: string;
  /** The value as systemd reads it: trimmed, line continuations joined. */
  readonly value: string;
  /** 1-based line the assignment starts on; 0 for options built in code rather than parsed. */
  readonly line: number;
}

/** A parsed unit file: its options in file order. */
export interface UnitFile {
  readonly options: readonly UnitOption[];
}

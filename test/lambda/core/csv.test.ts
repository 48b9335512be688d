/** Headerless numeric CSV, the SageMaker text/csv convention, in and out. */
import { parseCsv, parseCsvLine, toCsv } from '../../../lambda/core/csv';
import { BadRequestError, PayloadTooLargeError } from '../../../lambda/core/errors';
import { errorOf } from '../../support/errors';

describe('parseCsv', () => {
  it('reads rows of numbers', () => {
    expect(parseCsv('1,2,3\n4.5,-6,7e2\n', 10)).toEqual([
      [1, 2, 3],
      [4.5, -6, 700],
    ]);
    expect(parseCsv('.5,+2,-0.25E-1,3.', 1)).toEqual([[0.5, 2, -0.025, 3]]);
  });

  it('takes CRLF, blank lines, and spaces around cells', () => {
    expect(parseCsv('\r\n 1 , 2 \r\n\r\n3,4\r\n\r\n', 10)).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it('takes a single row with no newline, and a single column', () => {
    expect(parseCsv('0.25', 1)).toEqual([[0.25]]);
    expect(parseCsv('1\n2\n3', 3)).toEqual([[1], [2], [3]]);
  });

  it.each([
    ['1,2\n3,abc', 'CSV line 2, column 2: "abc" is not a number'],
    ['1,,2', 'CSV line 1, column 2: "" is not a number'],
    ['1,2,', 'CSV line 1, column 3: "" is not a number'],
    ['"1",2', 'CSV line 1, column 1: "\\"1\\"" is not a number'],
    ['1,2\n\n3,NaN', 'CSV line 3, column 2: "NaN" is not a number'],
    ['Infinity', 'CSV line 1, column 1: "Infinity" is not a number'],
    ['1e999', 'CSV line 1, column 1: "1e999" is not a number'],
    ['0x10,1', 'CSV line 1, column 1: "0x10" is not a number'],
    ['1,0b1', 'CSV line 1, column 2: "0b1" is not a number'],
  ])('a bad cell in %j is a 400 naming its line and column', (text, message) => {
    const err = errorOf(() => parseCsv(text, 10));
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).status).toBe(400);
    expect(err.message).toBe(message);
  });

  it('rows of different widths are a 400 naming both lines', () => {
    const err = errorOf(() => parseCsv('1,2,3\n4,5,6\n7,8', 10));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.message).toBe('CSV line 3 has 2 columns; line 1 has 3');
  });

  it('names the first row by its real line number when blank lines come before it', () => {
    expect(errorOf(() => parseCsv('\n\n1,2,3\n4,5', 10)).message).toBe(
      'CSV line 4 has 2 columns; line 3 has 3',
    );
  });

  it('a body with no rows is a 400', () => {
    for (const text of ['', '\n', ' \r\n \n']) {
      const err = errorOf(() => parseCsv(text, 10));
      expect(err).toBeInstanceOf(BadRequestError);
      expect(err.message).toBe('the CSV body has no rows');
    }
  });

  it('more rows than maxRows is a 413; exactly maxRows is fine', () => {
    expect(parseCsv('1\n2\n3\n', 3)).toHaveLength(3);
    const err = errorOf(() => parseCsv('1\n2\n3\n4', 3));
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect((err as PayloadTooLargeError).status).toBe(413);
    expect(err.message).toBe('the CSV body has more than 3 rows; split it into smaller requests');
  });
});

describe('parseCsvLine', () => {
  it('reads one line and reports errors with the line number given', () => {
    expect(parseCsvLine('1, 2.5,-3', 7)).toEqual([1, 2.5, -3]);
    expect(errorOf(() => parseCsvLine('1,x', 7)).message).toBe('CSV line 7, column 2: "x" is not a number');
  });
});

describe('toCsv', () => {
  it('writes one line per row, with a final newline', () => {
    expect(
      toCsv([
        [1, 2.5, -3],
        [true, false, 'x'],
      ]),
    ).toBe('1,2.5,-3\ntrue,false,x\n');
  });

  it('quotes cells holding commas, quotes or newlines', () => {
    expect(toCsv([['a,b', 'say "hi"', 'two\nlines', 'cr\r', 'plain']])).toBe(
      '"a,b","say ""hi""","two\nlines","cr\r",plain\n',
    );
  });

  it('round-trips numbers through parseCsv', () => {
    const rows = [
      [0.1, -1e-7, 123456789.125],
      [Number.MAX_SAFE_INTEGER, -0.5, 3],
    ];
    expect(parseCsv(toCsv(rows), 10)).toEqual(rows);
  });
});

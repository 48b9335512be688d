import { OnnxModel } from '../../../lambda/core/model';
import { openModel } from '../../../lambda/core/open';
import {
  CsvHeaderError,
  looksLikeCsvHeader,
  RowReader,
  splitCsvLine,
  strictNumber,
} from '../../../lambda/core/rows';
import { addMulModel, identityModel, mixedModel } from '../../fixtures/models';
import { IRIS_DIR } from '../../support/cdk';

const open = (bytes: Uint8Array, name: string) => OnnxModel.create(bytes, { name, version: '1' });

describe('splitCsvLine and strictNumber', () => {
  it('splits RFC 4180 quoting on one line and says what is wrong', () => {
    expect(splitCsvLine('1,2,3', 1)).toEqual(['1', '2', '3']);
    expect(splitCsvLine('"a,b",c,"say ""hi"""', 1)).toEqual(['a,b', 'c', 'say "hi"']);
    expect(splitCsvLine('"",x,', 1)).toEqual(['', 'x', '']);
    expect(() => splitCsvLine('1,"open', 7)).toThrow(
      'line 7: a quoted field is not closed (a field cannot span lines)',
    );
    expect(() => splitCsvLine('"a"b,c', 2)).toThrow('line 2: text after a closing quote in column 1');
  });

  it('a CSV header is a line with a cell that is not a number', () => {
    expect(looksLikeCsvHeader('id,a,b,c,d')).toBe(true);
    expect(looksLikeCsvHeader('"x",1,2')).toBe(true);
    expect(looksLikeCsvHeader('5.1, 3.5,1.4e0,-0.2')).toBe(false);
    expect(looksLikeCsvHeader('"5.1",3')).toBe(false);
    // A line that cannot be split is not data either.
    expect(looksLikeCsvHeader('1,"2')).toBe(true);
  });
  it('takes decimal notation only', () => {
    for (const ok of ['1', '-2.5', '+.5', '5.', '1e3', '0', ' 0.0 ', '-0', '1 ']) {
      expect(strictNumber(ok)).toBe(Number(ok));
    }
    for (const bad of ['', ' ', '0x10', '0b1', '0o7', ' 0x10', 'Infinity', '1e400', 'NaN', '1,5', 'abc']) {
      expect(strictNumber(bad)).toBeNaN();
    }
  });
});

describe('RowReader', () => {
  let iris: OnnxModel;
  let addMul: OnnxModel;
  let mixed: OnnxModel;
  let three: OnnxModel;
  beforeAll(async () => {
    iris = (await openModel({ location: IRIS_DIR })).model;
    addMul = await open(addMulModel().bytes, 'addmul');
    mixed = await open(mixedModel().bytes, 'mixed');
    three = await open(identityModel('FP32', ['batch', 3]).bytes, 'three');
  });
  afterAll(async () => {
    for (const m of [iris, addMul, mixed, three]) await m.release();
  });

  it('JSONL: a value for the only input, or an object by input name; an id field; row numbers otherwise', () => {
    const r = new RowReader(addMul, 'jsonl');
    expect(r.line(1, '{"a": [1, 2, 3], "b": [1, 1, 1]}')).toEqual({
      line: 1,
      id: 1,
      row: { a: [1, 2, 3], b: [1, 1, 1] },
    });
    expect(r.line(2, '')).toBeUndefined();
    expect(r.line(3, '{"id": "cust-9", "a": [0, 0, 0], "b": [1, 2, 3]}')).toEqual({
      line: 3,
      id: 'cust-9',
      row: { a: [0, 0, 0], b: [1, 2, 3] },
    });
    const single = new RowReader(three, 'jsonl', { idField: 'key' });
    expect(single.line(1, '[1, 2, 3]')).toEqual({ line: 1, id: 1, row: { x: [1, 2, 3] } });
    expect(single.line(2, '{"key": 7, "x": [4, 5, 6]}')).toEqual({ line: 2, id: 7, row: { x: [4, 5, 6] } });
  });

  it('JSONL: each bad row says what to fix', () => {
    const r = new RowReader(addMul, 'jsonl');
    const err = (text: string) => {
      try {
        r.line(1, text);
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err('{"a": [1, 2')).toMatch(/^not valid JSON: /);
    expect(err('[1, 2, 3]')).toBe(
      "this model has inputs 'a', 'b'; each line must be an object keyed by input name",
    );
    expect(err('{"a": [1, 2, 3]}')).toBe("missing input 'b'; each row needs: a, b");
    expect(err('{"a": [1, 2, 3], "b": [1, 1, 1], "c": 1}')).toBe(
      `unknown input 'c'; the model's inputs are: a, b (and "id" for a row id)`,
    );
    expect(err('{"a": [1, 2], "b": [1, 1, 1]}')).toBe(
      "input 'a': expected 3 values, got 2 (each row is shaped [3])",
    );
    expect(err('{"a": [1, "x", 3], "b": [1, 1, 1]}')).toBe(
      'input \'a\'[1]: FP32 values must be numbers, got "x"',
    );
    expect(err('{"a": [1, 1e39, 3], "b": [1, 1, 1]}')).toBe("input 'a'[1]: 1e+39 is outside the FP32 range");
    expect(err('{"a": [[1], 2, 3], "b": [1, 1, 1]}')).toBe(
      "input 'a'[0]: expected a number, got a list (each row is shaped [3])",
    );
    expect(err('{"id": {"x": 1}, "a": [1, 2, 3], "b": [1, 1, 1]}')).toBe(
      '"id" must be a non-empty string or a number, got an object',
    );
  });

  it('CSV without a header: all columns feed the only input; a header-less multi-input model is refused', () => {
    const r = new RowReader(iris, 'csv');
    expect(r.line(1, '5.1,3.5,1.4,0.2')).toEqual({ line: 1, id: 1, row: { input: [5.1, 3.5, 1.4, 0.2] } });
    expect(r.mapping).toEqual({ header: false, by: 'position', ignored: [] });
    expect(() => r.line(2, '5.1,3.5,1.4')).toThrow('has 3 columns; the first row has 4');
    expect(() => r.line(3, '5.1,abc,1.4,0.2')).toThrow('column 2: "abc" is not a number');
    // The first row sets the width: one that cannot fit the input fails the file, not each row.
    expect(() => new RowReader(iris, 'csv').line(1, '5.1,3.5,1.4')).toThrow(CsvHeaderError);
    expect(() => new RowReader(addMul, 'csv', { csvHeader: 'absent' }).line(1, '1,2,3,4,5,6')).toThrow(
      "a CSV file without a header needs a model with one input; this one has 'a', 'b': add a header naming them (e.g. a[0],...,a[2],b[0],...,b[2])",
    );
  });

  it('CSV header by feature name, in any column order, with an id column and left-out columns', () => {
    const r = new RowReader(iris, 'csv');
    expect(r.line(1, 'petal_width,id,sepal_length,species,petal_length,sepal_width')).toBeUndefined();
    expect(r.mapping).toEqual({ header: true, by: 'feature name', idColumn: 'id', ignored: ['species'] });
    expect(r.line(2, '0.2,a-1,5.1,setosa,1.4,3.5')).toEqual({
      line: 2,
      id: 'a-1',
      row: { input: [5.1, 3.5, 1.4, 0.2] },
    });
  });

  it('CSV header by input name: whole columns for scalars, name[i] for elements, strings and booleans typed', () => {
    const r = new RowReader(addMul, 'csv');
    r.line(1, 'b[2],b[1],b[0],a[0],a[1],a[2]');
    expect(r.mapping?.by).toBe('input name');
    expect(r.line(2, '3,2,1,7,8,9')?.row).toEqual({ a: [7, 8, 9], b: [1, 2, 3] });

    const m = new RowReader(mixed, 'csv');
    m.line(1, 'text,mask,ids');
    expect(m.line(2, '"hello, world",true,41')?.row).toEqual({ text: 'hello, world', mask: true, ids: 41 });
    expect(() => m.line(3, 'x,maybe,1')).toThrow(
      'column 2 (mask): "maybe" is not a boolean (true, false, 1 or 0)',
    );
  });

  it('CSV header problems are named', () => {
    expect(() => new RowReader(addMul, 'csv').line(1, 'a[0],a[1],a[2]')).toThrow(
      "the CSV header has no column for input 'b'; name columns after inputs, e.g. a[0],...,a[2],b[0],...,b[2]",
    );
    expect(() => new RowReader(addMul, 'csv').line(1, 'a[0],a[2],b[0],b[1],b[2]')).toThrow(
      "the CSV header has no column 'a[1]'",
    );
    expect(() => new RowReader(addMul, 'csv').line(1, 'x,y')).toThrow(
      "the CSV header (x, y) names none of the model's inputs; name columns after inputs, e.g. a[0],...,a[2],b[0],...,b[2]",
    );
    expect(() => new RowReader(iris, 'csv').line(1, 'f,f')).toThrow("the CSV header names column 'f' twice");
    // Any header a one-input model cannot place by name is positional, as long as the widths agree.
    const r = new RowReader(iris, 'csv');
    r.line(1, 'f0,f1,f2,f3');
    expect(r.mapping?.by).toBe('position');
  });

  it('Distributed Map items: CSV records keyed by header, JSONL values', () => {
    const csv = new RowReader(iris, 'csv');
    expect(
      csv.item(5, 3, { sepal_length: '5.1', sepal_width: '3.5', petal_length: '1.4', petal_width: '0.2' }),
    ).toEqual({ line: 5, id: 4, row: { input: [5.1, 3.5, 1.4, 0.2] } });
    expect(() => csv.item(6, 4, ['5.1'])).toThrow(/a CSV item must be an object keyed by the header/);
    const jsonl = new RowReader(iris, 'jsonl');
    expect(jsonl.item(1, 0, { id: 'z', input: [1, 2, 3, 4] })).toEqual({
      line: 1,
      id: 'z',
      row: { input: [1, 2, 3, 4] },
    });
  });

  it('a huge batch sent as one row is one bad row with a clear reason, not a crash', () => {
    const r = new RowReader(three, 'jsonl');
    expect(() => r.line(1, JSON.stringify(Array.from({ length: 10_000 }, () => [1, 2, 3])))).toThrow(
      "input 'x': expected 3 values, got 10000 (each row is shaped [3])",
    );
  });
});
